//! The table a run ends with (`summary.txt`, and the terminal): the run, its operations,
//! availability in and out of faults, each fault with its evidence, each checker's verdict.

use crate::analysis::faults::{leader_changes, FaultWindow};
use crate::analysis::ops::{Latency, PhaseStats};
use crate::analysis::{Analysis, CheckerOutcome, CounterexampleText, RunFacts};
use splitbrain_checkers::Verdict;
use std::collections::BTreeMap;
use tabled::{builder::Builder, settings::Style};

fn leader_changes_text(faults: &[FaultWindow]) -> String {
    match leader_changes(faults) {
        Some(n) => format!(", the leader changed across {n}"),
        None => String::new(),
    }
}

/// Seconds since the start of the run, for tables.
fn at(ns: u64) -> String {
    format!("{:.1}s", ns as f64 / 1e9)
}

/// Evidence items kept per fault in the table (the full list is in results.json).
const EVIDENCE_SHOWN: usize = 4;

/// The table of a checked run.
pub fn render(
    facts: &RunFacts,
    analysis: &Analysis,
    outcomes: &[CheckerOutcome],
    verdict: Verdict,
) -> String {
    let c = facts.campaign;
    let stats = &analysis.ops;
    let mut b = Builder::default();
    b.push_record(["campaign", &c.name]);
    b.push_record([
        "system".to_owned(),
        format!("{} ({} nodes)", c.system.name(), facts.nodes.len()),
    ]);
    b.push_record(["seed".to_owned(), facts.seed.to_string()]);
    b.push_record([
        "main phase".to_owned(),
        format!(
            "{:.1}s{}",
            facts.main_elapsed.as_secs_f64(),
            if facts.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        ),
    ]);
    if !facts.node_deaths.is_empty() {
        b.push_record([
            format!("node crashes: {}", facts.node_deaths.len()),
            facts.node_deaths.join("\n"),
        ]);
    }
    for (f, [ok, fail, info, pending]) in &stats.by_function {
        b.push_record([
            format!("ops {f}"),
            format!("ok {ok}, fail {fail}, info {info}, pending {pending}"),
        ]);
    }
    let pct = |p: &PhaseStats| {
        if p.operations == 0 {
            "no operations".to_owned()
        } else {
            format!(
                "{:.1}% ok of {} ops, p99 {:.1}ms",
                p.availability * 100.0,
                p.operations,
                p.p99_ms
            )
        }
    };
    b.push_record([
        "availability".to_owned(),
        format!(
            "{:.1}% ok of {} ops",
            stats.availability * 100.0,
            stats.operations()
        ),
    ]);
    if !analysis.faults.is_empty() {
        b.push_record(["  during faults".to_owned(), pct(&analysis.during_faults)]);
        b.push_record(["  while healthy".to_owned(), pct(&analysis.healthy)]);
        for (kind, p) in &analysis.by_fault {
            b.push_record([format!("  during {kind}"), pct(p)]);
        }
    }
    let Latency { p50, p95, p99, max } = stats.latency_ms;
    b.push_record([
        "latency".to_owned(),
        format!("p50 {p50:.1}ms, p95 {p95:.1}ms, p99 {p99:.1}ms, max {max:.1}ms"),
    ]);
    if analysis.faults.is_empty() {
        b.push_record(["faults", "none injected"]);
    } else {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for w in &analysis.faults {
            *counts.entry(&w.kind).or_default() += 1;
        }
        let failed = analysis.faults.iter().filter(|w| w.error.is_some()).count();
        let not_in_effect = analysis
            .faults
            .iter()
            .filter(|w| w.effective == Some(false))
            .count();
        b.push_record([
            "faults".to_owned(),
            format!(
                "{} injected ({}){}",
                analysis.faults.len(),
                counts
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if failed > 0 {
                    format!(", {failed} with errors")
                } else {
                    String::new()
                },
            ) + &leader_changes_text(&analysis.faults)
                + &if not_in_effect > 0 {
                    format!(
                        ", {not_in_effect} of {} did not take effect",
                        analysis.faults.len()
                    )
                } else {
                    String::new()
                },
        ]);
        for w in &analysis.faults {
            let span = format!(
                "{}–{}",
                at(w.start_ns),
                w.end_ns.map_or_else(|| "end".to_owned(), at)
            );
            let mut text = format!("{span} {}", w.description);
            if let Some(took) = w.took_us {
                text.push_str(&format!(" (applied in {:.1}ms)", took as f64 / 1e3));
            }
            for e in w.evidence.iter().take(EVIDENCE_SHOWN) {
                text.push_str(&format!("\n  {e}"));
            }
            if w.evidence.len() > EVIDENCE_SHOWN {
                text.push_str(&format!("\n  … {} more", w.evidence.len() - EVIDENCE_SHOWN));
            }
            if w.evidence.is_empty() && w.error.is_none() {
                text.push_str("\n  no evidence recorded");
            }
            if let Some(e) = &w.error {
                text.push_str(&format!("\n  error: {e}"));
            }
            let id = w.id.map_or_else(String::new, |i| format!(" #{i}"));
            let label = if w.effective == Some(false) {
                format!("  {}{id}\n  ✗ NOT IN EFFECT", w.kind)
            } else {
                format!("  {}{id}", w.kind)
            };
            b.push_record([label, text]);
        }
    }
    for o in outcomes {
        b.push_record([
            format!("checker {}", o.checker),
            format!("{}: {}", o.verdict, o.detail),
        ]);
        if let Some(cex) = &o.counterexample {
            b.push_record([
                "counterexample".to_owned(),
                CounterexampleText(cex).to_string().trim_end().to_owned(),
            ]);
        }
    }
    b.push_record(["verdict".to_owned(), verdict.to_string().to_uppercase()]);
    let mut table = b.build();
    table.with(Style::sharp());
    format!("{table}\n")
}

/// The summary for a terminal: the lines that say a fault did not take effect in red
/// (unless `NO_COLOR` is set). Files and pipes get the plain table.
pub fn for_terminal(table: &str) -> String {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return table.to_owned();
    }
    table
        .lines()
        .map(|line| {
            if line.contains("NOT IN EFFECT") || line.contains("did not take effect") {
                format!("\x1b[31m{line}\x1b[0m\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}
