//! Shared helpers of the transactional tests: the case notation of
//! `data/txn/elle_cases.txt`, and checking an EDN history through the real reader.
#![allow(dead_code)]

use splitbrain_checkers::formats::{self, Format, Independent, ReadOptions};
use splitbrain_checkers::txn::anomaly::AnomalyKind;
use splitbrain_checkers::txn::consistency::ConsistencyModel;
use splitbrain_checkers::txn::{self, TxnCheckOptions, TxnCheckResult, Workload};
use splitbrain_checkers::verdict::Verdict;

/// One transaction line of a case.
#[derive(Debug, Clone)]
pub struct CaseTxn {
    pub process: u64,
    /// `ok`, `info` or `fail`.
    pub outcome: String,
    /// The EDN micro-ops as completed.
    pub mops: String,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub workload: Workload,
    pub concurrent: bool,
    pub expect: Vec<AnomalyKind>,
    pub absent: Vec<AnomalyKind>,
    pub verdicts: Vec<(ConsistencyModel, Verdict)>,
    pub txns: Vec<CaseTxn>,
}

fn kinds(words: &[&str], line: usize) -> Vec<AnomalyKind> {
    words
        .iter()
        .map(|w| {
            AnomalyKind::from_name(w).unwrap_or_else(|| panic!("line {line}: unknown anomaly {w}"))
        })
        .collect()
}

pub fn parse_cases(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words[0] == "case" {
            cases.push(Case {
                name: words[1].to_owned(),
                workload: Workload::ListAppend,
                concurrent: false,
                expect: Vec::new(),
                absent: Vec::new(),
                verdicts: Vec::new(),
                txns: Vec::new(),
            });
            continue;
        }
        let case = cases.last_mut().expect("a case line first");
        match words[0] {
            "workload" => case.workload = words[1].parse().unwrap(),
            "layout" => case.concurrent = words[1] == "concurrent",
            "expect" => case.expect = kinds(&words[1..], i + 1),
            "absent" => case.absent = kinds(&words[1..], i + 1),
            "valid" | "invalid" | "unknown" => {
                let v = match words[0] {
                    "valid" => Verdict::Valid,
                    "invalid" => Verdict::Invalid,
                    _ => Verdict::Unknown,
                };
                for m in &words[1..] {
                    case.verdicts.push((m.parse().unwrap(), v));
                }
            }
            p => {
                let process: u64 = p
                    .parse()
                    .unwrap_or_else(|_| panic!("line {}: bad line {line}", i + 1));
                let outcome = words[1].to_owned();
                let start = line.find('[').expect("micro-ops");
                case.txns.push(CaseTxn {
                    process,
                    outcome,
                    mops: line[start..].to_owned(),
                });
            }
        }
    }
    cases
}

/// The invocation form of micro-ops: list reads become `nil`.
pub fn invocation_mops(mops: &str, workload: Workload) -> String {
    let value = formats::edn::parse_value(mops).expect("EDN micro-ops");
    let items = value.as_list().expect("a vector of micro-ops");
    let parts: Vec<String> = items
        .iter()
        .map(|m| {
            let m = m.as_list().unwrap();
            let f = m[0].to_string();
            if f == ":r" {
                format!("[:r {} nil]", m[1])
            } else {
                let _ = workload;
                format!("[{} {} {}]", f, m[1], m[2])
            }
        })
        .collect();
    format!("[{}]", parts.join(" "))
}

impl Case {
    /// The case as a Jepsen EDN history, one op map per line.
    pub fn edn(&self) -> String {
        let mut invokes = Vec::new();
        let mut completes = Vec::new();
        for t in &self.txns {
            let inv = invocation_mops(&t.mops, self.workload);
            invokes.push(format!(
                "{{:process {}, :type :invoke, :f :txn, :value {inv}}}",
                t.process
            ));
            let value = if t.outcome == "ok" { &t.mops } else { &inv };
            completes.push(format!(
                "{{:process {}, :type :{}, :f :txn, :value {value}}}",
                t.process, t.outcome
            ));
        }
        let mut lines = Vec::new();
        if self.concurrent {
            lines.extend(invokes);
            lines.extend(completes);
        } else {
            for (i, c) in invokes.into_iter().zip(completes) {
                lines.push(i);
                lines.push(c);
            }
        }
        lines.join("\n") + "\n"
    }
}

pub fn read_edn(edn: &str) -> splitbrain_checkers::History {
    let opts = ReadOptions {
        format: Some(Format::Edn),
        independent: Independent::Off,
        ..ReadOptions::default()
    };
    formats::read_bytes(edn.as_bytes(), &opts)
        .expect("a readable history")
        .history
}

pub fn check_edn(edn: &str, workload: Workload, model: ConsistencyModel) -> TxnCheckResult {
    let history = read_edn(edn);
    txn::check(&history, &TxnCheckOptions::new(workload, model)).expect("a transactional history")
}
