//! Conformance with Porcupine's published test histories: every file listed in
//! `EXPECTED.tsv` is read (format detected) and checked with its model, under both readings
//! of a failed cas, and must get the expected verdict.
//!
//! The corpus lives beside the repository (`../shared/conformance/porcupine`, or wherever
//! `SPLITBRAIN_CONFORMANCE` points). A fresh clone without it skips with a printed reason.

mod common;

use splitbrain_checkers::formats::{read_file, ReadOptions};
use splitbrain_checkers::linearizability::{check, CheckOptions};
use splitbrain_checkers::models::{ModelKind, ModelSpec};
use splitbrain_checkers::Verdict;
use std::path::PathBuf;
use std::time::Duration;

fn corpus_dir() -> PathBuf {
    std::env::var_os("SPLITBRAIN_CONFORMANCE").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/porcupine"),
        PathBuf::from,
    )
}

struct Row {
    file: String,
    model: ModelKind,
    expected: Verdict,
}

fn rows(tsv: &str) -> Vec<Row> {
    tsv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 3, "EXPECTED.tsv row `{line}`");
            Row {
                file: cols[0].to_owned(),
                model: cols[1]
                    .parse()
                    .unwrap_or_else(|e| panic!("EXPECTED.tsv row `{line}`: {e}")),
                expected: match cols[2] {
                    "valid" => Verdict::Valid,
                    "invalid" => Verdict::Invalid,
                    other => panic!("EXPECTED.tsv row `{line}`: verdict `{other}`"),
                },
            }
        })
        .collect()
}

#[test]
fn porcupine_corpus_verdicts() {
    let dir = corpus_dir();
    let Ok(tsv) = std::fs::read_to_string(dir.join("EXPECTED.tsv")) else {
        common::skip(
            "porcupine_corpus_verdicts",
            common::Need::Conformance,
            format!(
                "Porcupine's corpus not found at {} (see docs/conformance.md)",
                dir.display()
            ),
        );
        return;
    };
    let rows = rows(&tsv);
    assert_eq!(rows.len(), 108, "EXPECTED.tsv should list 108 histories");

    let mut mismatches = Vec::new();
    let mut checked = 0;
    for row in &rows {
        let path = dir.join(&row.file);
        let read = read_file(&path, &ReadOptions::default())
            .unwrap_or_else(|e| panic!("reading {}: {e}", row.file));
        assert!(
            !read.history.events.is_empty(),
            "{}: no events read",
            row.file
        );
        for failed_cas_observes in [false, true] {
            let opts = CheckOptions {
                failed_cas_observes,
                // A generous bound so a regression shows as a failure, not a hang.
                time_limit: Some(Duration::from_secs(120)),
                // Porcupine stops at the first key it proves illegal, and so does this
                // comparison: the other keys of a bad kv history (c50-bad) can need an
                // exponential search to decide, which the verdict does not depend on.
                first_failure: true,
                ..CheckOptions::default()
            };
            let result = check(&read.history, &ModelSpec::new(row.model), &opts)
                .unwrap_or_else(|e| panic!("checking {}: {e}", row.file));
            checked += 1;
            if result.verdict != row.expected {
                mismatches.push(format!(
                    "{} ({}, failed cas {}): expected {}, got {}",
                    row.file,
                    row.model.name(),
                    if failed_cas_observes {
                        "observes"
                    } else {
                        "dropped"
                    },
                    row.expected,
                    result.verdict
                ));
            }
        }
    }
    println!("{checked} checks of {} histories", rows.len());
    assert!(
        mismatches.is_empty(),
        "{} of {checked} verdicts differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
