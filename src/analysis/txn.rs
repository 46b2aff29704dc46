//! The check of a transactional run (`list-append`, `rw-register`): Elle-style,
//! against the campaign's `checker.consistency`, with the campaign's time limit.

use super::CheckerOutcome;
use crate::campaign::{Campaign, WorkloadKind};
use splitbrain_checkers::txn::{self, TxnCheckOptions, TxnCheckResult, Workload};
use splitbrain_checkers::{History, Verdict};

/// The transactional checker's outcome for a run of a transactional workload; `None` for
/// any other workload.
pub fn check(history: &History, campaign: &Campaign) -> anyhow::Result<Option<CheckerOutcome>> {
    let workload = match campaign.workload.kind {
        WorkloadKind::ListAppend => Workload::ListAppend,
        WorkloadKind::RwRegister => Workload::RwRegister,
        _ => return Ok(None),
    };
    // Validated when the campaign was loaded.
    let consistency = campaign.consistency().map_err(anyhow::Error::msg)?;
    let mut opts = TxnCheckOptions::new(workload, consistency);
    opts.time_limit = Some(campaign.checker.time_limit);
    opts.memory_budget = Some(super::default_memory_budget());
    let checker = format!("{} ({})", workload.name(), consistency.name());
    let outcome = match txn::check(history, &opts) {
        Ok(result) => CheckerOutcome {
            checker,
            verdict: result.verdict,
            detail: detail(&result),
            result: serde_json::to_value(&result)?,
            counterexample: None,
            invalid_keys: Vec::new(),
            linearizations: Vec::new(),
            anomalies: result.anomalies.clone(),
        },
        // The recorder wrote this history: a transaction it cannot read is never `valid`.
        Err(e) => CheckerOutcome {
            checker,
            verdict: Verdict::Unknown,
            detail: format!(
                "not checked: the history is not one of {workload:?} transactions: {e}"
            ),
            result: serde_json::Value::Null,
            counterexample: None,
            invalid_keys: Vec::new(),
            linearizations: Vec::new(),
            anomalies: Vec::new(),
        },
    };
    Ok(Some(outcome))
}

/// One line: what was checked and what was found; for an invalid history, the forbidden
/// anomalies and the first one explained.
pub fn detail(result: &TxnCheckResult) -> String {
    let counts = format!(
        "{} transactions ({} ok, {} info, {} fail)",
        result.transactions, result.committed, result.indeterminate, result.aborted
    );
    let found: Vec<String> = result
        .anomaly_counts
        .iter()
        .map(|(kind, n)| format!("{kind} ×{n}"))
        .collect();
    match result.verdict {
        Verdict::Invalid => {
            let forbidden: Vec<&str> = result.forbidden.iter().map(|k| k.name()).collect();
            let first = result
                .anomalies
                .iter()
                .find(|a| result.forbidden.contains(&a.kind))
                .map(|a| {
                    format!(
                        "; the first: {}",
                        a.explanation.lines().next().unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            format!(
                "{counts}; {} forbidden by {} (found: {}){first}",
                forbidden.join(", "),
                result.consistency,
                found.join(", ")
            )
        }
        Verdict::Unknown => format!(
            "{counts}; {}",
            result.cause.as_deref().unwrap_or("not decided")
        ),
        Verdict::Valid if found.is_empty() => format!("{counts}; no anomalies found"),
        Verdict::Valid => format!(
            "{counts}; none forbidden by {} (found: {})",
            result.consistency,
            found.join(", ")
        ),
    }
}
