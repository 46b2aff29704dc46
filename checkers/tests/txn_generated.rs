//! Generated transactional histories: valid by construction, with hidden anomalies of
//! each kind, and a differential test against a brute-force oracle on tiny histories.
//!
//! `SPLITBRAIN_TXN_CASES=N` raises the number of random tiny histories (default 3000).

mod txn_support;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use splitbrain_checkers::txn::anomaly::AnomalyKind;
use splitbrain_checkers::txn::consistency::ConsistencyModel;
use splitbrain_checkers::txn::generate::{self, GenOptions};
use splitbrain_checkers::txn::{self, TxnCheckOptions, Workload};
use splitbrain_checkers::verdict::Verdict;
use txn_support::check_edn;

fn options(model: ConsistencyModel) -> TxnCheckOptions {
    TxnCheckOptions::new(Workload::ListAppend, model)
}

#[test]
fn generated_histories_are_valid() {
    for seed in 1..=4 {
        let opts = GenOptions {
            txns: 3000,
            keys: 20,
            failed: 0.02,
            seed,
            ..GenOptions::default()
        };
        let h = generate::list_append(&opts);
        let r = txn::check(&h, &options(ConsistencyModel::StrictSerializable)).unwrap();
        assert_eq!(r.verdict, Verdict::Valid, "seed {seed}:\n{}", r.text());
        assert!(r.anomaly_counts.is_empty());
        assert_eq!(r.compatible.len(), ConsistencyModel::ALL.len());
        assert!(r.edges > 3000, "the graph is not empty: {} edges", r.edges);
        assert!(r.indeterminate > 0 && r.aborted > 0);
        // Without strict serializability, order edges are not inferred and that model is
        // left undecided rather than claimed.
        let s = txn::check(&h, &options(ConsistencyModel::Serializable)).unwrap();
        assert_eq!(s.verdict, Verdict::Valid);
        assert_eq!(s.unchecked, vec![ConsistencyModel::StrictSerializable]);
        assert_eq!(s.compatible.len(), ConsistencyModel::ALL.len() - 1);
        assert!(s.edges < r.edges);
    }
}

#[test]
fn every_injected_anomaly_is_found_and_named() {
    let kinds = [
        AnomalyKind::G0,
        AnomalyKind::G1a,
        AnomalyKind::G1b,
        AnomalyKind::G1c,
        AnomalyKind::GSingle,
        AnomalyKind::GNonadjacent,
        AnomalyKind::G2Item,
        AnomalyKind::Internal,
        AnomalyKind::DuplicateElements,
        AnomalyKind::GarbageRead,
        AnomalyKind::IncompatibleOrder,
        AnomalyKind::DirtyUpdate,
        AnomalyKind::LostUpdate,
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for kind in kinds {
        let opts = GenOptions {
            txns: 2000,
            keys: 10,
            seed: rng.gen(),
            ..GenOptions::default()
        };
        let mut h = generate::list_append(&opts);
        let at = rng.gen_range(0..h.events.len());
        assert!(generate::inject(&mut h, kind, at, 1 << 40, 1 << 40));
        let r = txn::check(&h, &options(ConsistencyModel::StrictSerializable)).unwrap();
        assert_eq!(r.verdict, Verdict::Invalid, "{kind}");
        assert!(
            r.anomaly_counts.contains_key(&kind),
            "{kind} not found: {:?}",
            r.anomaly_counts
        );
        let example = r.anomalies.iter().find(|a| a.kind == kind).unwrap();
        assert!(!example.explanation.is_empty());
        if kind.is_cycle() {
            // The cycle stays inside the injected block: fresh processes.
            assert!(example.txns.iter().all(|t| t.process >= 1 << 40), "{kind}");
            assert_eq!(example.cycle.len(), example.txns.len());
        }
    }
}

/// A tiny random list-append history from a serial execution whose reads are sometimes
/// stale (they see the key as it was some transactions earlier), all committed.
fn tiny_history(rng: &mut ChaCha8Rng) -> Vec<Vec<(bool, i64, Vec<i64>)>> {
    let n = rng.gen_range(2..=5);
    let keys = rng.gen_range(1..=2);
    let mut state: Vec<Vec<Vec<i64>>> = vec![vec![Vec::new()]; keys]; // versions per key
    let mut next = 1;
    let mut txns = Vec::new();
    for _ in 0..n {
        let ops = rng.gen_range(1..=3);
        let mut txn = Vec::new();
        for _ in 0..ops {
            let k = rng.gen_range(0..keys);
            if rng.gen_bool(0.5) {
                let mut v = state[k].last().unwrap().clone();
                v.push(next);
                state[k].push(v);
                txn.push((true, k as i64, vec![next]));
                next += 1;
            } else {
                let versions = &state[k];
                let pick = if rng.gen_bool(0.25) {
                    rng.gen_range(0..versions.len())
                } else {
                    versions.len() - 1
                };
                txn.push((false, k as i64, versions[pick].clone()));
            }
        }
        txns.push(txn);
    }
    // A final reader of every key, sometimes stale too.
    let mut last = Vec::new();
    for (k, versions) in state.iter().enumerate() {
        let pick = if rng.gen_bool(0.1) {
            rng.gen_range(0..versions.len())
        } else {
            versions.len() - 1
        };
        last.push((false, k as i64, versions[pick].clone()));
    }
    txns.push(last);
    // Shuffle the transactions: the history order says nothing (all concurrent).
    for i in (1..txns.len()).rev() {
        let j = rng.gen_range(0..=i);
        txns.swap(i, j);
    }
    txns
}

/// Is there a serial order of the transactions explaining every read?
fn serializable(txns: &[Vec<(bool, i64, Vec<i64>)>]) -> bool {
    fn go(
        txns: &[Vec<(bool, i64, Vec<i64>)>],
        used: &mut Vec<bool>,
        state: &mut Vec<Vec<i64>>,
    ) -> bool {
        if used.iter().all(|u| *u) {
            return true;
        }
        for i in 0..txns.len() {
            if used[i] {
                continue;
            }
            let saved = state.clone();
            let mut ok = true;
            for (append, k, v) in &txns[i] {
                let list = &mut state[*k as usize];
                if *append {
                    list.push(v[0]);
                } else if list != v {
                    ok = false;
                    break;
                }
            }
            if ok {
                used[i] = true;
                if go(txns, used, state) {
                    return true;
                }
                used[i] = false;
            }
            *state = saved;
        }
        false
    }
    let keys = txns
        .iter()
        .flatten()
        .map(|(_, k, _)| *k as usize + 1)
        .max()
        .unwrap_or(0);
    go(
        txns,
        &mut vec![false; txns.len()],
        &mut vec![Vec::new(); keys],
    )
}

fn to_edn(txns: &[Vec<(bool, i64, Vec<i64>)>]) -> String {
    let mops = |txn: &Vec<(bool, i64, Vec<i64>)>, observed: bool| {
        let parts: Vec<String> = txn
            .iter()
            .map(|(append, k, v)| {
                if *append {
                    format!("[:append {k} {}]", v[0])
                } else if observed {
                    let items: Vec<String> = v.iter().map(|e| e.to_string()).collect();
                    format!("[:r {k} [{}]]", items.join(" "))
                } else {
                    format!("[:r {k} nil]")
                }
            })
            .collect();
        format!("[{}]", parts.join(" "))
    };
    let mut out = String::new();
    for (p, t) in txns.iter().enumerate() {
        out += &format!(
            "{{:process {p}, :type :invoke, :f :txn, :value {}}}\n",
            mops(t, false)
        );
    }
    for (p, t) in txns.iter().enumerate() {
        out += &format!(
            "{{:process {p}, :type :ok, :f :txn, :value {}}}\n",
            mops(t, true)
        );
    }
    out
}

#[test]
fn oracle_agrees_on_tiny_histories() {
    let cases: usize = std::env::var("SPLITBRAIN_TXN_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let (mut valid, mut invalid, mut compared) = (0, 0, 0);
    for case in 0..cases {
        let txns = tiny_history(&mut rng);
        let edn = to_edn(&txns);
        let r = check_edn(&edn, Workload::ListAppend, ConsistencyModel::Serializable);
        let oracle = serializable(&txns);
        // Sound always: an invalid verdict means no serial order exists.
        if r.verdict == Verdict::Invalid {
            assert!(
                !oracle,
                "case {case}: checker says invalid, oracle serializable\n{edn}\n{}",
                r.text()
            );
            invalid += 1;
        }
        // Complete when every append was read by someone: all version orders are known.
        let appended: Vec<(i64, i64)> = txns
            .iter()
            .flatten()
            .filter(|(a, _, _)| *a)
            .map(|(_, k, v)| (*k, v[0]))
            .collect();
        let observed = appended.iter().all(|(k, v)| {
            txns.iter()
                .flatten()
                .any(|(a, rk, rv)| !*a && rk == k && rv.contains(v))
        });
        // An empty transaction graph (read-only histories, say) is `unknown`: no claim.
        if observed && r.verdict != Verdict::Unknown {
            compared += 1;
            assert_eq!(
                r.verdict == Verdict::Valid,
                oracle,
                "case {case}: checker {} vs oracle {oracle}\n{edn}\n{}",
                r.verdict,
                r.text()
            );
        }
        if r.verdict == Verdict::Valid {
            valid += 1;
        }
    }
    // The generator must exercise both outcomes.
    assert!(
        valid > cases / 10 && invalid > cases / 10,
        "valid {valid}, invalid {invalid}"
    );
    assert!(compared > cases / 2, "compared only {compared}");
}

/// A tiny rw-register history: a serial execution whose reads are sometimes stale.
/// Micro-ops: (is_write, key, value; None = nil).
type RegTxn = Vec<(bool, i64, Option<i64>)>;

fn tiny_register_history(rng: &mut ChaCha8Rng) -> Vec<RegTxn> {
    let n = rng.gen_range(2..=5);
    let keys = rng.gen_range(1..=2);
    let mut versions: Vec<Vec<Option<i64>>> = vec![vec![None]; keys];
    let mut next = 1;
    let mut txns = Vec::new();
    for _ in 0..n {
        let mut txn = Vec::new();
        for _ in 0..rng.gen_range(1..=3) {
            let k = rng.gen_range(0..keys);
            if rng.gen_bool(0.5) {
                versions[k].push(Some(next));
                txn.push((true, k as i64, Some(next)));
                next += 1;
            } else {
                let vs = &versions[k];
                let pick = if rng.gen_bool(0.3) {
                    rng.gen_range(0..vs.len())
                } else {
                    vs.len() - 1
                };
                txn.push((false, k as i64, vs[pick]));
            }
        }
        txns.push(txn);
    }
    for i in (1..txns.len()).rev() {
        let j = rng.gen_range(0..=i);
        txns.swap(i, j);
    }
    txns
}

fn register_serializable(txns: &[RegTxn]) -> bool {
    fn go(txns: &[RegTxn], used: &mut Vec<bool>, state: &mut Vec<Option<i64>>) -> bool {
        if used.iter().all(|u| *u) {
            return true;
        }
        for i in 0..txns.len() {
            if used[i] {
                continue;
            }
            let saved = state.clone();
            let mut ok = true;
            for &(write, k, v) in &txns[i] {
                if write {
                    state[k as usize] = v;
                } else if state[k as usize] != v {
                    ok = false;
                    break;
                }
            }
            if ok {
                used[i] = true;
                if go(txns, used, state) {
                    return true;
                }
                used[i] = false;
            }
            *state = saved;
        }
        false
    }
    go(txns, &mut vec![false; txns.len()], &mut vec![None; 2])
}

#[test]
fn register_checker_is_sound_against_the_oracle() {
    let cases: usize = std::env::var("SPLITBRAIN_TXN_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let (mut invalid, mut not_serializable) = (0, 0);
    for case in 0..cases {
        let txns = tiny_register_history(&mut rng);
        let show = |v: Option<i64>| v.map_or_else(|| "nil".to_owned(), |v| v.to_string());
        let mops = |t: &RegTxn, observed: bool| {
            let parts: Vec<String> = t
                .iter()
                .map(|&(w, k, v)| {
                    if w {
                        format!("[:w {k} {}]", show(v))
                    } else if observed {
                        format!("[:r {k} {}]", show(v))
                    } else {
                        format!("[:r {k} nil]")
                    }
                })
                .collect();
            format!("[{}]", parts.join(" "))
        };
        let mut edn = String::new();
        for (p, t) in txns.iter().enumerate() {
            edn += &format!(
                "{{:process {p}, :type :invoke, :f :txn, :value {}}}\n",
                mops(t, false)
            );
        }
        for (p, t) in txns.iter().enumerate() {
            edn += &format!(
                "{{:process {p}, :type :ok, :f :txn, :value {}}}\n",
                mops(t, true)
            );
        }
        let r = check_edn(&edn, Workload::RwRegister, ConsistencyModel::Serializable);
        let oracle = register_serializable(&txns);
        if !oracle {
            not_serializable += 1;
        }
        if r.verdict == Verdict::Invalid {
            invalid += 1;
            assert!(
                !oracle,
                "case {case}: checker invalid, oracle serializable\n{edn}\n{}",
                r.text()
            );
        }
    }
    // Its inference is sound, not complete, for registers; on these tiny histories it
    // still finds almost everything the oracle rejects (729 of 735 with the default seed).
    assert!(
        invalid * 10 >= not_serializable * 9,
        "invalid {invalid} of {not_serializable}"
    );
}
